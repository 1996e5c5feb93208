"""The cooperative's console under /console: people's logins and sessions, and screens
of plain HTML forms over the API's own handlers (docs/console.md)."""
