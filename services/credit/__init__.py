"""credit: the registry of subjects, credit records from governance work, lists, and a tamper-evident history."""
