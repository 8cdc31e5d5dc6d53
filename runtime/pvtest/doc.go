// Package pvtest is the App Engine test framework: it reads the suites
// under tests/<group>/<n>/ (test.json in the pv-test@1 format plus a golden
// output file), builds the test containers, runs each test in a fresh App
// Engine instance with its own storage, run directory and private mount
// namespace, and compares the test script's stdout with the golden file.
//
// A test:
//
//	tests/local/0/test.json   {"#spec":"pv-test@1","description":…,"setup":{…},"test-script":"resources/test"}
//	tests/local/0/output      what the test script must print
//
// The runner (runtime/cmd/pvtest, driven by ./test.docker.sh) uses:
//
//	tests, err := pvtest.Discover("tests")
//	picked, err := pvtest.Select(tests, "local:0")
//	res := pvtest.Run(ctx, t, pvtest.RunOptions{…})   // inside the private namespace
//
// Each instance boots Pantavisor through pv-appengine from an App Engine
// package (mkimage/appengine). The initial revision follows upstream: the
// instance boots the empty factory revision, then the framework builds
// locals/<group>_<n> with pvtx from the test's containers, runs it with
// LOCAL_RUN and waits for DONE or UPDATED.
package pvtest
