"""Helpers every suite shares: waiting with a deadline, and small loopback servers that
count what reaches them. Fixtures stay in the conftests; what they share lives here."""
