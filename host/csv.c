/* placeholder */ typedef int ecap_placeholder_csv;
