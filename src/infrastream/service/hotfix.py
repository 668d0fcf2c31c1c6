"""The hotfix lane: replace a few applications of the release in production and take the
result down the track's `hotfixStages`, signed off by that lane's approvers.

A hotfix starts from what production runs (the release of the set that completed most
recently), carries an incident reference everywhere it is shown, and records the builds it
brings as `hotfix` versions: they never become the "latest" version a regular release picks
up, which is what lets the forward-port guard notice a regular release that lacks the fix.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from infrastream.domain.errors import Conflict, Invalid, NotFound
from infrastream.domain.forward_port import Fix
from infrastream.domain.inputs import free_text, valid_name
from infrastream.domain.release import parse_image
from infrastream.domain.roles import START_HOTFIX, Principal
from infrastream.manifests import Lane
from infrastream.store.inserted import inserted_id
from infrastream.store.tables import app_versions

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .records import release_content
from .records.manifests import current_bundle, lane_stages
from .records.releases import active_fixes
from .releases import CreatedRelease, insert_release, release_name_for, snapshot


def _hotfix_version(services: Services, principal: Principal, app: str, image: str,
                    incident: str) -> dict[str, Any]:
    """The app_versions row of a hotfix build, recorded (channel `hotfix`) if new."""
    ref = parse_image(image)
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(app_versions).where(
            (app_versions.c.app == app) & (app_versions.c.image == image))).first()
        if row is None:
            version_id = inserted_id(conn.execute(insert(app_versions).values(
                app=app, image=image, label=ref.label, commit=None, recorded_at=now,
                recorded_by=principal.name, channel="hotfix",
            )))
            audit.record(conn, at=now, actor=principal.name, action="version.record",
                         object_type="application", object_id=app,
                         after={"image": image, "channel": "hotfix", "incident": incident})
            return {"id": version_id, "image": image, "version": ref.label, "commit": None}
    return {"id": row.id, "image": row.image, "version": row.label, "commit": row.commit}


@refusals.audited("hotfix.create", "release", lambda a: a["app_set"])
def create_hotfix(services: Services, principal: Principal, app_set: str,
                  replacements: dict[str, str], incident: str,
                  name: str | None = None) -> CreatedRelease:
    require(principal, START_HOTFIX, "start hotfixes")
    if not incident or not incident.strip():
        raise Invalid("a hotfix needs an incident reference (--incident)")
    if not replacements:
        raise Invalid("a hotfix replaces at least one application (--app APP=IMAGE)")
    incident = free_text("the incident reference", incident)
    if name is not None:
        valid_name("release", name)
    bundle = current_bundle(services)
    track, stages = lane_stages(bundle, app_set, Lane.HOTFIX)
    with services.db.connect() as conn:
        base, base_fixes = active_fixes(conn, app_set)
        if base is None:
            raise Conflict(f"nothing of `{app_set}` has reached production yet: there is "
                           "nothing to hotfix; cut a regular release")
        base_content = release_content.load(conn, base.id, base.digest)
    apps = {a.metadata.name: a for a in bundle.applications_of(app_set)}
    versions = dict(base_content.versions)
    fixes = [f for f in base_fixes if f.app not in replacements]
    base_ref = f"{app_set}/{base.name}"
    with services.db.connect() as conn:
        release_name = name or release_name_for(conn, app_set, base.name)
    for app, image in replacements.items():
        if app not in apps:
            raise NotFound(f"application `{app}` is not part of `{app_set}`")
        try:
            repository = parse_image(image).repository
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if repository != apps[app].spec.image:
            raise Invalid(f"image `{image}` is not from `{apps[app].spec.image}`, the image "
                          f"of `{app}`")
        versions[app] = _hotfix_version(services, principal, app, image, incident)
        fixes.append(Fix(app, image, int(versions[app]["id"]), f"{app_set}/{release_name}",
                         incident))
    content = {
        "applicationSet": app_set,
        "lane": Lane.HOTFIX.value,
        "versions": versions,
        "manifests": snapshot(bundle, app_set, Lane.HOTFIX),
        "hotfix": {"base": base_ref, "baseDigest": base.digest, "incident": incident,
                   "replaced": sorted(replacements), "fixes": [f.to_json() for f in fixes]},
    }
    created = insert_release(services, principal, app_set, release_name, content, Lane.HOTFIX,
                             track.metadata.name, len(stages), incident=incident,
                             base_release_id=base.id)
    return created.model_copy(update={"base": base_ref})
