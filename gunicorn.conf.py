"""gunicorn's settings: the Procfile's web process reads this file.

Its access and error logs go through the project's logging (project/logging.py): key=value
lines with phone numbers and the delivery-report webhook's secret masked. gunicorn's own
handlers would print each request line as it came, the secret path segment included
(docs/security.md, section 4).
"""

from project.logging import gunicorn_logging_config

# The access log on standard output, one masked line per request.
accesslog = "-"
logconfig_dict = gunicorn_logging_config()
