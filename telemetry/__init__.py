"""Logs and metrics: the one package every other package may import (it imports none of them),
so no provider, brain or store depends on the server to say what it did."""
