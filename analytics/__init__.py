"""Pure analytics: no Django, no other app."""
