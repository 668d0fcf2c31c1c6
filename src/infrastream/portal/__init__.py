"""The Infrastream portal: the web face of the service layer (see `app.mount_portal`)."""

from .app import create_portal, mount_portal

__all__ = ["create_portal", "mount_portal"]
