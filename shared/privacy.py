"""Personal data that must not leave whole in logs and events."""


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise, not enough to call."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
