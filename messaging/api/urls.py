from django.urls import path

from messaging.api import views

urlpatterns = [
    path("messages/send", views.SendMessageApi.as_view(), name="messages-send"),
    path("messages/preview", views.PreviewMessageApi.as_view(), name="messages-preview"),
    path("messages/send-requests", views.SendRequestListApi.as_view(), name="send-requests"),
    path("messages/send-requests/<int:send_request_id>", views.SendRequestDetailApi.as_view(),
         name="send-request-detail"),
    path("messages/send-requests/<int:send_request_id>/messages", views.SendRequestMessagesApi.as_view(),
         name="send-request-messages"),
    path("messages/send-requests/<int:send_request_id>/export.csv", views.SendRequestExportApi.as_view(),
         name="send-request-export"),
    path("messages/send-requests/<int:send_request_id>/cancel", views.SendRequestCancelApi.as_view(),
         name="send-request-cancel"),
    path("students", views.StudentListApi.as_view(), name="students"),
    path("classes", views.ClassListApi.as_view(), name="classes"),
    path("templates", views.TemplateListApi.as_view(), name="templates"),
    path("credits", views.CreditsApi.as_view(), name="credits"),
    path("consents", views.ConsentApi.as_view(), name="consents"),
    path("consents/due-for-reconfirmation", views.ConsentsDueApi.as_view(), name="consents-due"),
    path("opt-outs", views.OptOutApi.as_view(), name="opt-outs"),
    # The secret in a header (X-Webhook-Secret), or as the path segment (the older form).
    path("solapi/reports/", views.SolapiReportWebhook.as_view(), name="solapi-reports-by-header"),
    path("solapi/reports/<str:secret>/", views.SolapiReportWebhook.as_view(), name="solapi-reports"),
]
