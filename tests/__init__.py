"""Tests that drive Tandem from the outside, as a user would."""
