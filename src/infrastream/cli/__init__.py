"""The `infrastream` command line: kubectl-like verbs, tables or `-o json|yaml`."""
