package main

// scacheDefaults are the defaults of scache(8)'s own parameters as
// `postconf -d` prints them for Postfix 3.7.11; mastercompat knows only
// the skeleton's. TestScacheDefaults_postconf checks them against the
// installed Postfix.
var scacheDefaults = map[string]string{
	"connection_cache_ttl_limit":          "2s",
	"connection_cache_status_update_time": "600s",
	"connection_cache_protocol_timeout":   "5s",
	"connection_cache_service_name":       "scache",
}
