"""The interview self-quiz (`grade quiz`)."""
