"""The gRPC server that holds remote autograd sessions."""
