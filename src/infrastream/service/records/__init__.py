"""Read-only records: the helpers every wing of the service layer reads stored facts with.

Finding a release and its stage runs, the manifests as currently applied, what a release's
content says, what runs where, who occupies an environment, decrypted secret values for the
jobs. Nothing here writes or audits: use cases, the engine and the views all stand on it.
"""
