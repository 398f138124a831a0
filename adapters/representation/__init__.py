"""The buyer's printable copy of a document (graphic representation)."""
