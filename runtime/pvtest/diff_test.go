package pvtest

import "testing"

func TestUnified(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		diff      string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"changed line", "a\nb\nc\n", "a\nB\nc\n", "--- want\n+++ got\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"added at end", "a\n", "a\nb\n", "--- want\n+++ got\n@@ -1,1 +1,2 @@\n a\n+b\n"},
		{"from empty", "", "x\n", "--- want\n+++ got\n@@ -0,0 +1,1 @@\n+x\n"},
		{"to empty", "x\n", "", "--- want\n+++ got\n@@ -1,1 +0,0 @@\n-x\n"},
		{"missing newline", "a\n", "a", "--- want\n+++ got\n@@ -1,1 +1,1 @@\n-a\n+a\n\\ No newline at end of file\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n",
			"--- want\n+++ got\n@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n"},
		{"close changes merge", "1\n2\n3\n4\n5\n", "x\n2\n3\n4\ny\n",
			"--- want\n+++ got\n@@ -1,5 +1,5 @@\n-1\n+x\n 2\n 3\n 4\n-5\n+y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unified("want", "got", []byte(tt.want), []byte(tt.got)); got != tt.diff {
				t.Errorf("Unified() =\n%s\nwant\n%s", got, tt.diff)
			}
		})
	}
}

func BenchmarkUnified(b *testing.B) {
	var want, got []byte
	for i := 0; i < 500; i++ {
		want = append(want, "line of golden output\n"...)
		if i%50 == 0 {
			got = append(got, "changed\n"...)
		} else {
			got = append(got, "line of golden output\n"...)
		}
	}
	for b.Loop() {
		Unified("a", "b", want, got)
	}
}
