"""The grid service: the grid hierarchy, grid members, and locating a point in its grid."""
