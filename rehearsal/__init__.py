"""`make rehearse`: the whole delivery flow on real parts on one machine (see __main__)."""
