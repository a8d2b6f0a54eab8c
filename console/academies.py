"""Which academy a console page acts for: the one the staff member picked, kept in the session.

The JSON API names the academy per request (X-Tenant); a person picks it once after logging
in. Membership is checked on every request, so a membership removed since the pick stops
working at once, and another academy's id in the session is never trusted.
"""

from django.http import HttpRequest

from tenants.models import Tenant

SESSION_KEY = "console_academy_id"


def academies_of(user) -> list[Tenant]:
    """The academies this user is staff of (tenants.Membership), by name."""
    return list(Tenant.objects.filter(memberships__user=user).order_by("name", "id"))


def current_academy(request: HttpRequest) -> Tenant | None:
    """The academy picked in this session, or the user's only one; None when a pick is needed."""
    academies = academies_of(request.user)
    picked = request.session.get(SESSION_KEY)
    for academy in academies:
        if academy.id == picked:
            return academy
    if len(academies) == 1:
        return academies[0]
    return None


def choose_academy(request: HttpRequest, academy_id: int) -> Tenant | None:
    """Remember the pick if the user is staff of that academy; None (and nothing kept) otherwise."""
    academy = next((a for a in academies_of(request.user) if a.id == academy_id), None)
    if academy is not None:
        request.session[SESSION_KEY] = academy.id
    return academy
