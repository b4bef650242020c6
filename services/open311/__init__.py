"""Open311 GeoReport v2 over HTTP, mapped onto the incidents service."""
