"""The response desk: SLA clocks, templates, replies, users and roles, assignment, automations, notifications,
escalation, customers, privacy, and the text safety (redaction, untrusted) that the desk's output relies on."""
