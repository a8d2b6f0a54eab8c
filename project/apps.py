from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin with the operations console's site (project/admin_site.py)."""

    default_site = "project.admin_site.ConsoleAdminSite"
