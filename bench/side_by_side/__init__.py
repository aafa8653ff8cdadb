"""Side-by-side benchmark: selfpub vs a CrewAI crew, same items, same counting server (see README.md)."""
