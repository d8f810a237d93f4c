"""What "Allow for this session" remembers, and whether a new request is covered by it.

A rule is either the identical call ({"tool", "input"}) or one of the CLI's own permission
suggestions ({"tool", "content"}: Claude's `addRules` `ruleContent`, such as `npm test` or the
prefix form `npm run:*`; no content: any call of the tool). Rules hold for the rest of the
tab's conversation.
"""

from __future__ import annotations

import re
from typing import Any

from .approvals import ApprovalRequest

# What a rule's content is compared with, per input key, most telling first.
_SUBJECT_KEYS = ("command", "file_path", "path", "url", "pattern")
# A prefix rule never covers a compound command: `git:*` must not allow `git x; rm -rf ~`.
_COMPOUND = re.compile(r"[;&|`$()<>\n]")


def remembered(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The rules an `allow_session` decision on `request` adds."""
    return [{"tool": request.tool, "input": request.input}, *request.rules]


def suggested_rules(suggestions: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Claude's `permission_suggestions` that allow calls (`addRules`), as rules."""
    rules = []
    for suggestion in suggestions:
        if suggestion.get("type") != "addRules" or suggestion.get("behavior") != "allow":
            continue
        for rule in suggestion.get("rules") or []:
            if isinstance(rule, dict) and isinstance(rule.get("toolName"), str):
                content = rule.get("ruleContent")
                rules.append({"tool": rule["toolName"],
                              "content": content if isinstance(content, str) else None})
    return tuple(rules)


def covers(rules: list[dict[str, Any]], tool: str, arguments: dict[str, Any]) -> bool:
    """Whether one of `rules` allows this call without asking."""
    return any(_covers(rule, tool, arguments) for rule in rules if rule.get("tool") == tool)


def _covers(rule: dict[str, Any], tool: str, arguments: dict[str, Any]) -> bool:
    if "input" in rule:
        return rule["input"] == arguments
    content = rule.get("content")
    if content is None:
        return True
    subject = next((arguments[key] for key in _SUBJECT_KEYS
                    if isinstance(arguments.get(key), str)), None)
    if subject is None:
        return False
    if content.endswith(":*"):
        prefix = content[:-2]
        # Whole words: `ls:*` covers `ls -la`, never `lsblk` or `ls-evil`.
        whole_word = subject == prefix or (subject.startswith(prefix)
                                           and subject[len(prefix)] in " \t")
        return whole_word and not _COMPOUND.search(subject)
    return subject == content
