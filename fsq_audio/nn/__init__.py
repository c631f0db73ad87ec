"""Neural-network building blocks shared by the codec and its discriminators."""
