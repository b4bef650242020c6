"""dispatch: route each incident to the department that must handle it, with deadlines and escalation."""
