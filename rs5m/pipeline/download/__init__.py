"""The download stage: img2dataset behind an egress guard, one candidate partition at a time."""
