"""After the send: delivery reports from Solapi's webhook, and reconciliation by polling."""
