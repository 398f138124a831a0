"""The buyer's copy by e-mail: the parcel (one ZIP) and the SMTP courier."""
