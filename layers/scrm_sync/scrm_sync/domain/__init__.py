"""Pure domain rules: canonical events, identifiers, precedence, profiles."""
