// Package sqlcheck holds one test, which reads the module's source and fails
// when SQL is built by concatenating anything but constants: the rule "no SQL
// built from input" of the reliability issue, checked on every go test.
package sqlcheck
