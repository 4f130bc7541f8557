// Package packaging holds no code: it is the .deb's nfpm config
// (nfpm.yaml) and maintainer scripts (scripts/), and the test that builds
// a package, reads it back with dpkg-deb and installs, upgrades, removes
// and purges it with dpkg in a staging root.
package packaging
