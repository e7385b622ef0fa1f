"""Shared fixtures. Service fixtures live in tests/plugins/ and are registered here."""

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.seaweedfs",
    "tests.plugins.audio_samples",
]
