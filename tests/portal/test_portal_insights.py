"""The Insights page: the four figures with links to the releases behind them, and SVG
charts of deployments per tier and of where each stage's time goes, readable without JS."""

from __future__ import annotations

import re

from portal_site import V1, Site

from infrastream.service import promotions


def test_the_insights_page_shows_the_four_figures_and_the_charts(site: Site):
    site.to_production_gate()
    for name in ("quinn", "paula", "sam"):
        promotions.approve(site.services, site.user(name), V1)
    site.wait_until(lambda s: s["state"] == "completed")
    page = site.signed_in("rita").get("/portal/insights").text
    for figure in ("leadTime", "changeFailureRate", "timeToRestore", "deploymentFrequency"):
        assert f'data-figure="{figure}"' in page
    assert 'href="/portal/releases/shop/v1"' in page  # the lead time's release
    assert "0%" in page and "0 of 1 production releases" in page
    assert page.count('<rect class="bar"') == 3  # development, staging, production
    assert re.search(r'<rect class="phase-approval"[^>]*><title>approval: ', page)
    assert "<td>production</td><td class=\"hide-narrow\">1</td>" in page
    narrow = site.signed_in("rita").get("/portal/insights?track=nothing&days=7").text
    assert "No deployment in the period." in narrow
