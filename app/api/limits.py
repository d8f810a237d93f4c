"""Lengths and page sizes the endpoints accept, shared by the views and the OpenAPI document."""

NAME_MAX = 200  # a session's or tab's name
PATH_MAX = 4096  # a session's folder
# Longest accepted value of each: every session list and event carries them.
GROUP_FIELD_MAX = {"groupId": 200, "groupName": 200, "groupEmoji": 16}
LOGS_PAGE_MAX = 1000  # log entries per page
HISTORY_PAGE_MAX = 5000  # history entries per answer
AUDIT_PAGE_MAX = 1000  # audit entries per page
THEME_ID_MAX = 100
