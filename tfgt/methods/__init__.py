"""Transfer methods. Each turns a source model into a target model and states
what trains and which extra losses apply; the trainer knows none of them."""
