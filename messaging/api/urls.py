from django.urls import path

from messaging.api import views

urlpatterns = [
    path("messages/send", views.SendMessageApi.as_view(), name="messages-send"),
    path("messages/preview", views.PreviewMessageApi.as_view(), name="messages-preview"),
    path("messages/send-requests/<int:send_request_id>", views.SendRequestDetailApi.as_view(),
         name="send-request-detail"),
    path("messages/send-requests/<int:send_request_id>/cancel", views.SendRequestCancelApi.as_view(),
         name="send-request-cancel"),
    path("credits", views.CreditsApi.as_view(), name="credits"),
    path("consents", views.ConsentApi.as_view(), name="consents"),
    path("consents/due-for-reconfirmation", views.ConsentsDueApi.as_view(), name="consents-due"),
    path("opt-outs", views.OptOutApi.as_view(), name="opt-outs"),
    # The secret in a header (X-Webhook-Secret), or as the path segment (the older form).
    path("solapi/reports/", views.SolapiReportWebhook.as_view(), name="solapi-reports-by-header"),
    path("solapi/reports/<str:secret>/", views.SolapiReportWebhook.as_view(), name="solapi-reports"),
]
