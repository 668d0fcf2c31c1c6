"""The REST API (FastAPI): a thin face over the service layer, errors as RFC 9457 problems."""
