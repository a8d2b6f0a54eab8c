"""What operators read: message timelines, worker liveness, counts by status."""
