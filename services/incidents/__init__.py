"""incidents: intake from mobile clients, pinned to grids, a lifecycle with an audit trail."""
