"""Writing a send: rules, recipients, refusals, previews, and the stored request."""
