"""The service layer: use cases, transactions, authorization checks, the engine loop.

Wings, top to bottom (an import-linter contract keeps them so):

    engine | views        the loop and its jobs; the read models the faces print
    use cases             manifests, versions, releases, promotions, hotfix, prerelease,
                          rollback, secrets, identity, sessions, drift; the SCM gate:
                          scm_connections, webhooks, pull_requests, merges, scm_outbox
    auditing              the audit trail, checkpoints, verification, evidence
    records               read-only helpers every wing reads stored facts with
    permissions, context  enforcing `domain.roles`; the Services every call gets
"""
