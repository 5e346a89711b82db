"""Speech providers: streaming recognizers and synthesizers behind the interfaces in speech.base."""
