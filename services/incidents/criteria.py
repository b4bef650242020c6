"""Filing and closing criteria per category (立案标准, 结案标准) and who may verify a result.
Plain Python, no I/O.

The operator's category catalogue says, per category, what a report must contain to be filed
(`file_requires`), what a case must have to be closed (`close_requires`) and whether its
verification must be independent (`independent_verification`). A report short of its
category's filing criteria is refused with what it lacks; a close short of the closing criteria
is refused the same way. Nobody verifies a result they resolved; where the category asks for
independent verification, neither does the officer who reported it."""
from __future__ import annotations

from dataclasses import dataclass

from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

# What a report may be required to contain, and how an error names it.
FILE_ITEMS = {"photo": "a photo (an image attachment)", "subject": "a subject (whom it concerns)",
              "description": "a description"}
# What a case may be required to have before it is closed.
CLOSE_ITEMS = {"resolution": "the department's result on record (the resolution they reported)",
               "note": "a closing note saying how it ended"}


@dataclass(frozen=True)
class Criteria:
    file_requires: tuple[str, ...] = ()
    close_requires: tuple[str, ...] = ()
    independent_verification: bool = False


def parse(item: dict, where: str) -> Criteria:
    """The criteria of one catalogue entry; InvalidArgument names the entry and the bad value."""
    def items(key: str, known: dict) -> tuple[str, ...]:
        value = item.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"{where}: {key} must be a list of {', '.join(known)}")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise InvalidArgument(f"{where}: {key} has {', '.join(unknown)}; one of {', '.join(known)}")
        return tuple(dict.fromkeys(value))
    independent = item.get("independent_verification", False)
    if not isinstance(independent, bool):
        raise InvalidArgument(f"{where}: independent_verification is true or false")
    return Criteria(items("file_requires", FILE_ITEMS), items("close_requires", CLOSE_ITEMS), independent)


def check_filing(category: str, criteria: Criteria, *, has_photo: bool, has_subject: bool,
                 has_description: bool) -> None:
    have = {"photo": has_photo, "subject": has_subject, "description": has_description}
    missing = [FILE_ITEMS[k] for k in criteria.file_requires if not have[k]]
    if missing:
        needed = ", ".join(FILE_ITEMS[k] for k in criteria.file_requires)
        raise InvalidArgument(f"category {category} is filed only with {needed}; this report lacks {', '.join(missing)}")


def check_closing(category: str, criteria: Criteria, *, has_resolution: bool, note: str | None,
                  was_case: bool) -> None:
    """`was_case`: it went through handling (closing a rejected report is not closing a case)."""
    if not was_case:
        return
    have = {"resolution": has_resolution, "note": bool((note or "").strip())}
    missing = [CLOSE_ITEMS[k] for k in criteria.close_requires if not have[k]]
    if missing:
        raise FailedPrecondition(f"category {category} is closed only with "
                                 f"{', '.join(CLOSE_ITEMS[k] for k in criteria.close_requires)}; "
                                 f"this case lacks {', '.join(missing)}")


def check_verifier(verifier: str, criteria: Criteria, *, resolver: str | None, reporter: str) -> None:
    if resolver is not None and verifier == resolver:
        raise PermissionDenied("the member who resolved the case may not verify it; another officer checks")
    if criteria.independent_verification and verifier == reporter:
        raise PermissionDenied("this category is verified independently: an officer other than the one "
                               "who reported it checks")
