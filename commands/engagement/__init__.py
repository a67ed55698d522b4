"""Campaigns, polls and short surveys by SMS (issue 13): specs, answers, reply routing."""
