"""Domain repositories: plain functions over a Connection (Core, not ORM), one module per
concern. They never commit: the caller's transaction decides (the handler's effect, its reply
and the MO's processed mark commit together)."""
