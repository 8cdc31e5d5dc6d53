package pantavisor

// RunUpdateNoReboot lets the external test package run the update test
// with runtime/pantavisor/updater (which imports this package).
var RunUpdateNoReboot = runUpdateNoReboot
