from django.contrib.auth import views as auth_views
from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.compose, name="compose"),
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True,
                                                next_page="console:compose"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("academies/", views.academies, name="academies"),
    path("send-requests/", views.history, name="history"),
    path("send-requests/<int:send_request_id>/", views.watch, name="watch"),
    path("send-requests/<int:send_request_id>/retry", views.retry, name="retry"),
    path("send-requests/<int:send_request_id>/export.csv", views.export, name="export"),
]
