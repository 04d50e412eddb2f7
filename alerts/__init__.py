"""Alert channels (Slack, email, signed webhook), message rendering and routing. Filled by the alerts issue."""
