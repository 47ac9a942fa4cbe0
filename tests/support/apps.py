"""Settings every test app gets unless a test says otherwise."""

from __future__ import annotations

# PostgreSQL apps need a SECRET_KEY, and tests that are not about limits must
# never be throttled.
TEST_APP_ENV = {
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "SIGNUP_RATE_LIMIT": "10000/minute",
}
