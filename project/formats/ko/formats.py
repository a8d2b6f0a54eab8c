"""How the admin (LANGUAGE_CODE "ko") prints dates and times: every time in Asia/Seoul
(TIME_ZONE) and labelled with its zone ("T" prints KST), so no one reads a time without
knowing its clock. Django's own Korean formats print "2026년 11월 30일 8:17 오후", unlabelled.
FORMAT_MODULE_PATH (project/settings.py) points here."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i:s"
