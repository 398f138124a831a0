"""The buyer's printable copy of an issued document (graphic representation): PDF in two
layouts, rendered from the signed XML with its QR."""
